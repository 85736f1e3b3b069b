"""Pydantic schemas of evidence photos: what a request view lists and what an upload answers."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PhotoRef(BaseModel):
    """A photo attached to a request, as the request view lists it."""

    sha256: str = Field(description="SHA-256 of the stored file (hex): its name and identity")
    url: str = Field(description="Where those who may see the request fetch it (bearer token)")
    content_type: str = Field(examples=["image/jpeg"])
    width: int = Field(description="Pixels, upright (EXIF orientation applied)")
    height: int = Field(description="Pixels, upright (EXIF orientation applied)")


class PhotoPublic(PhotoRef):
    """An uploaded photo: re-encoded without metadata, stored by content hash."""

    bytes: int = Field(description="Size of the stored file")
