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


class PhotoLimits(BaseModel):
    """What the server accepts, so a page can scale a photo down before sending it."""

    photo_max_bytes: int = Field(description="Largest upload in bytes (413 photo_too_large)")
    photo_max_pixels: int = Field(description="Most pixels (width × height) a photo may have")
    photo_max_edge_px: int = Field(description="Longest side of a stored photo (larger: scaled)")
    photos_per_request: int = Field(description="Photos one request may carry (409 beyond)")
