"""Entry point of the frozen app: the same ``main`` as the ``transcriber`` console script.

PyInstaller runs a script, not a package's ``__main__`` (whose relative imports need the
package context), hence this file.
"""

import sys

from transcriber.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
