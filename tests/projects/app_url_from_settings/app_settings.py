"""The application's settings object, validated when imported (like a pydantic BaseSettings)."""

import os


class SettingsError(ValueError):
    """A setting is missing or invalid."""


class Settings:
    def __init__(self) -> None:
        url = os.environ.get("APP_DATABASE_URL", "")
        if not url.startswith("postgresql"):
            raise SettingsError("APP_DATABASE_URL must be set to the application's database URL")
        self.database_url = url


settings = Settings()
