"""A second look at photos where the detector found nothing: turned copies map back exactly."""

from __future__ import annotations

import numpy as np
import pytest

from facebank.pipeline import _detect_rotated
from facebank.types import Box, Detection, Landmarks


class BrightestSpot:
    """A stand-in detector: the brightest pixel is the 'face' (a box around it, one landmark on it)."""

    def detect(self, image: np.ndarray) -> list[Detection]:
        y, x = np.unravel_index(np.argmax(image[..., 0]), image.shape[:2])
        return [Detection(Box(x - 5.0, y - 5.0, x + 5.0, y + 5.0), 1.0, "spot",
                          Landmarks(((float(x), float(y)),) * 5, "mtcnn5"))]


@pytest.mark.parametrize("angle", [30.0, -30.0, 90.0])
def test_faces_found_in_a_turned_copy_land_where_they_are_in_the_photo(angle):
    img = np.zeros((120, 200, 3), np.uint8)
    img[40:43, 150:153] = 255  # the spot, centre (151, 41)
    (d,) = _detect_rotated(BrightestSpot(), img, angle)
    x, y = d.landmarks.points[0]
    assert abs(x - 151) <= 1.5 and abs(y - 41) <= 1.5
    assert d.box.x1 <= x <= d.box.x2 and d.box.y1 <= y <= d.box.y2
    assert d.box.x1 >= 0 and d.box.x2 <= 200 and d.box.y1 >= 0 and d.box.y2 <= 120


def test_an_unknown_second_look_is_a_clear_error():
    from facebank.settings import Settings

    with pytest.raises(ValueError, match="unknown second look 'sideways'"):
        Settings(second_look="rotate, sideways")
    s = Settings(second_look=" rotate, hog ")
    assert s.second_look == "rotate,hog" and s.pipeline_key().endswith("|look=rotate,hog")
    assert "look=" not in Settings().pipeline_key()  # off by default: cached embeddings stay valid
