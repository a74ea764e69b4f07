"""Knowledge articles, their revisions and indexed chunks (built in the knowledge issue)."""
