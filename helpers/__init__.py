"""Shared helpers: the audio data core (`helpers.data`) and the training layer."""
