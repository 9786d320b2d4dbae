"""Images among uploads: verified, measured, stripped of their GPS position, thumbnailed.

Pillow decodes an image only after its header says it has at most
CHAT_UPLOAD_MAX_PIXELS pixels (a decompression bomb is refused unread). The kept
image loses its EXIF GPS position and nothing else (a JPEG keeps its own
quantization); the thumbnail is WebP, at most THUMB_SIZE pixels a side.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from typing import IO, Any

from PIL import Image, ImageOps, JpegImagePlugin

from chat import conf
from chat.errors import ChatError, ErrorCode

log = logging.getLogger(__name__)

THUMB_SIZE = 480  # the longest side of a thumbnail, in pixels
THUMB_TYPE = "image/webp"
GPS_IFD = 0x8825  # the EXIF tag that points to the GPS position
# What Pillow calls each image type; a phone's JPEG is often MPO (a JPEG with more images).
_PILLOW_FORMATS = {
    "image/png": {"PNG"},
    "image/jpeg": {"JPEG", "MPO"},
    "image/gif": {"GIF"},
    "image/webp": {"WEBP"},
}


@dataclass(frozen=True, slots=True)
class Checked:
    width: int
    height: int
    thumb: bytes
    cleaned: bytes | None  # the image without its GPS position; None: unchanged


def check(file: IO[bytes], content_type: str) -> Checked:
    """Verify an image, measure it (as shown: after its EXIF orientation), thumbnail it,
    and take its EXIF GPS position out (every other EXIF tag stays)."""
    bad = ChatError(ErrorCode.BAD_REQUEST, f"The file is not a valid {content_type} image.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            file.seek(0)
            with Image.open(file) as probe:
                _check_pixels(probe.width, probe.height)
                if probe.format not in _PILLOW_FORMATS[content_type]:
                    raise bad
                probe.verify()
            file.seek(0)
            with Image.open(file) as image:
                image.load()
                shown = ImageOps.exif_transpose(image)
                thumb = shown.copy()
                thumb.thumbnail((THUMB_SIZE, THUMB_SIZE))
                thumb = thumb.convert("RGBA" if thumb.has_transparency_data else "RGB")
                out = io.BytesIO()
                thumb.save(out, "WEBP", quality=80)
                return Checked(
                    width=shown.width,
                    height=shown.height,
                    thumb=out.getvalue(),
                    cleaned=_without_gps(image),
                )
    except Image.DecompressionBombError:  # Pillow's own refusal, at twice the limit
        raise ChatError(
            ErrorCode.FILE_TOO_LARGE,
            f"The image has too many pixels; the limit is {conf.CHAT_UPLOAD_MAX_PIXELS}.",
        ) from None
    except ChatError:
        raise
    except Exception:  # Pillow's many ways of saying the bytes are not a sound image
        log.info("Refused an image upload that does not decode", exc_info=True)
        raise bad from None


def _check_pixels(width: int, height: int) -> None:
    """Refuse an image over CHAT_UPLOAD_MAX_PIXELS (or Pillow's own bound, if lower), from
    its header alone: a decompression bomb is never decoded."""
    limit = min(conf.CHAT_UPLOAD_MAX_PIXELS, Image.MAX_IMAGE_PIXELS or conf.CHAT_UPLOAD_MAX_PIXELS)
    if width * height > limit:
        raise ChatError(
            ErrorCode.FILE_TOO_LARGE,
            f"The image has {width * height} pixels; the limit is {limit}.",
        )


def _without_gps(image: Image.Image) -> bytes | None:
    """The image saved again without its EXIF GPS position; None if it has none.

    A JPEG is saved with its own quantization tables and subsampling
    (``quality="keep"``), so it loses as little as a re-encode can. An MPO (a
    phone's JPEG carrying more images, each with EXIF of its own) is always
    saved again as its first image alone, a plain JPEG.
    """
    exif = image.getexif()
    if GPS_IFD not in exif and image.format != "MPO":
        return None
    exif.get_ifd(0x8769)  # the Exif sub-IFD, loaded so it is written back
    exif.pop(GPS_IFD, None)
    options: dict[str, Any] = {"exif": exif.tobytes()}
    if image.info.get("icc_profile"):
        options["icc_profile"] = image.info["icc_profile"]
    kind = "JPEG" if image.format == "MPO" else image.format
    if image.format == "MPO":  # "keep" is for JPEG alone: the same tables, given explicitly
        sampling = JpegImagePlugin.get_sampling(image)
        options.update(qtables=getattr(image, "quantization", None), subsampling=sampling)
    elif kind == "JPEG":
        options.update(quality="keep", subsampling="keep")
    elif kind == "WEBP":
        options.update(lossless=True)
    if kind != "JPEG" and getattr(image, "n_frames", 1) > 1:
        options["save_all"] = True
    out = io.BytesIO()
    image.save(out, kind, **options)
    return out.getvalue()
