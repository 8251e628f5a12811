"""E-mail addresses as pydantic's EmailStr reads them: email-validator's syntax check and normal form.

The edge's parser, loaded by the modules that take e-mails from outside (lead sources, the
events API); readers of an envelope get the address already normalised (shared.payloads).
"""

from __future__ import annotations

from pydantic.networks import import_email_validator, validate_email

import_email_validator()  # loaded now, with the function that parses e-mails, not on its first request


def normalize_email(value: str) -> str:
    """The normalised address; raises pydantic_core.PydanticCustomError (value_error) naming why not."""
    return validate_email(value)[1]
