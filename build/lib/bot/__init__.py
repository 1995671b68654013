"""voicebot: submit MetaStudio voice-training tasks from Slack through an approval thread."""

__version__ = "0.1.0"
