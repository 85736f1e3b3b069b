"""Secret keys the service keeps: from a setting, else made once in an owner-only file."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet

from geo.district import ensure_private_dir

log = logging.getLogger("practice_circle")
#: Characters of codes people read aloud or type (check-in, pick-up): no 0/O or 1/I.
READABLE = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def secret_key(setting: str, *, cache: Path, name: str) -> bytes:
    """Return a key: the setting's value if set, else ``<cache>/<name>.key`` (made once, 0600).

    A made key is a Fernet key (urlsafe base64 of 32 random bytes): it encrypts, and it signs
    as an HMAC key. Losing it loses what it protects, so the log says where it is.
    """
    if setting:
        return setting.encode()
    path = ensure_private_dir(cache) / f"{name}.key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    key = Fernet.generate_key()
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    log.warning("made a new key in %s: keep it with the database", path)
    return key
