"""The Kommandant: one conversation turn start to finish, the front doors (web, CLI), settings."""
