"""The languages Whisper's multilingual models transcribe, by code, and checking a language a user gives.

The codes are the ones faster-whisper's tokenizer accepts (a test holds the two lists
together); the names let a refusal suggest the code for "french" or "Deutsch".
"""

from __future__ import annotations

from .errors import ConfigError

CODES = (
    "af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha haw he hi hr ht hu hy id is "
    "it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr ms mt my ne nl nn no oc pa pl ps pt ro ru sa sd si sk sl "
    "sn so sq sr su sv sw ta te tg th tk tl tr tt uk ur uz vi yi yo zh yue"
).split()

# Names (in English and in the language itself) of the languages people ask for most.
_NAMES = {
    "english": "en", "german": "de", "deutsch": "de", "french": "fr", "français": "fr", "francais": "fr",
    "spanish": "es", "español": "es", "espanol": "es", "castellano": "es", "italian": "it", "italiano": "it",
    "portuguese": "pt", "português": "pt", "portugues": "pt", "dutch": "nl", "nederlands": "nl", "russian": "ru",
    "русский": "ru", "japanese": "ja", "日本語": "ja", "korean": "ko", "한국어": "ko", "chinese": "zh", "mandarin": "zh",
    "中文": "zh", "cantonese": "yue", "arabic": "ar", "turkish": "tr", "türkçe": "tr", "polish": "pl", "polski": "pl",
    "swedish": "sv", "svenska": "sv", "danish": "da", "dansk": "da", "norwegian": "no", "norsk": "no",
    "finnish": "fi", "suomi": "fi", "greek": "el", "czech": "cs", "čeština": "cs", "hungarian": "hu", "magyar": "hu",
    "romanian": "ro", "română": "ro", "ukrainian": "uk", "українська": "uk", "hebrew": "he", "hindi": "hi",
    "indonesian": "id", "vietnamese": "vi", "thai": "th", "catalan": "ca", "català": "ca", "persian": "fa",
    "farsi": "fa", "welsh": "cy", "basque": "eu", "euskara": "eu", "galician": "gl",
}


def english_only(model: str) -> bool:
    """Whether the model ``model`` (a name) transcribes English only: ``tiny.en``, ``base.en``, ..."""
    name = str(model).strip().lower().rstrip("/").rsplit("/", 1)[-1]
    return name.endswith(".en") or name == "default"


def check_model_language(model: str, language: str | None) -> None:
    """Refuse a language the model cannot transcribe.

    Raises:
        ConfigError: an English-only model with another language; the message names a model that can.
    """
    if language and language != "en" and english_only(model):
        raise ConfigError(
            f"{model} transcribes English only, so it cannot transcribe {language!r}. Use a multilingual model: "
            f"--model base (installed with transcriber), or --model auto to pick one by the language spoken."
        )


def check_language(text: str | None) -> str | None:
    """A language code from what a user typed (``de``, `` DE ``); None or empty means "detect".

    Raises:
        ConfigError: not a code Whisper knows; the message suggests the code for a language
            name and lists the codes.
    """
    if text is None or not str(text).strip():
        return None
    code = str(text).strip().lower()
    if code in CODES:
        return code
    raise ConfigError(f"Unknown language {str(text).strip()!r}: {why_not_a_language(code)}")


def why_not_a_language(code: str) -> str:
    """What to give instead of ``code``, which is no language code."""
    suggestion = _NAMES.get(code.strip().lower())
    hint = f" For {code.strip()}, use {suggestion!r}." if suggestion in CODES else ""
    return f"give a language code, or nothing to detect the language.{hint} Codes: {', '.join(CODES)}."
