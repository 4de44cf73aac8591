"""facebank: learn faces from folders of photos, name them in new photos, honestly measured."""

from facebank.api import FaceBank
from facebank.images import ImageError, load_image
from facebank.settings import Settings
from facebank.types import Box, EnrollReport, Face, Landmarks, Match, PersonInfo, PhotoResult, Verification

__all__ = [
    "Box",
    "EnrollReport",
    "Face",
    "FaceBank",
    "ImageError",
    "Landmarks",
    "Match",
    "PersonInfo",
    "PhotoResult",
    "Settings",
    "Verification",
    "load_image",
]
__version__ = "0.1.0"
