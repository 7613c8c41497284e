"""Audio in: probing and streaming decode of media files; microphone recording."""
