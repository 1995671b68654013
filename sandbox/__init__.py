"""Local stand-ins for Slack and MetaStudio: real HTTP servers for tests and the local run."""
