"""transcriber: turn audio and video files into text on your own machine."""

__version__ = "0.1.0"
APP_NAME = "transcriber"
