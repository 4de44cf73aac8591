"""Quality findings: ``small_face``, ``blurry``, ``dark``, ``bright``, ``profile`` and ``cut``.

The measures are taken once per face when the facts are computed (``face_quality``), on the
aligned chip the embedder sees (150 px, the face proper in its central 100 px) and on the
landmarks. The checks compare them with ``AuditConfig`` thresholds; the confidence grows with how
far past the threshold a face is.
"""

from __future__ import annotations

from collections.abc import Iterator

from facebank.audit.base import AuditFolder, FaceFacts, Finding, register
from facebank.face_measures import (  # noqa: F401 - the measures, public here too
    blur_ratio,
    chip_measures,
    eye_nose,
    face_region,
    luma,
    outside_fraction,
    yaw_degrees,
)


def _conf(value: float, threshold: float, span: float) -> float:
    """0.5 at the threshold, approaching 1 as ``value`` goes ``span`` past it."""
    return round(min(1.0, 0.5 + 0.5 * max(0.0, value - threshold) / span), 3)


@register("quality")
class QualityCheck:
    name = "quality"
    kinds: tuple[str, ...] = ("small_face", "blurry", "dark", "bright", "profile", "cut")

    def run(self, folder: AuditFolder) -> Iterator[Finding]:
        c = folder.config
        for i, photo in enumerate(folder.photos):
            f = folder.main_face(i)
            if f is None or f.fallback:
                continue  # no detector vouched for this face: nothing to measure it by
            yield from self._face(photo.path, photo.person, f, c)

    def _face(self, path: str, person: str, f: FaceFacts, c) -> Iterator[Finding]:
        if f.side < c.small_face_px:
            yield Finding(path, "small_face",
                          f"the face is {f.side:.0f} px (under {c.small_face_px} px): too little detail",
                          _conf(c.small_face_px - f.side, 0, c.small_face_px / 2), person)
        if f.sharpness > c.blur_threshold:
            yield Finding(path, "blurry", f"the face is blurred (blur {f.sharpness:.2f} of 1, "
                          f"above {c.blur_threshold:.2f})",
                          _conf(f.sharpness, c.blur_threshold, 0.25), person)
        if f.luma_high < c.dark_luma:
            yield Finding(path, "dark", f"the face is under-exposed (even its brightest parts are "
                          f"{f.luma_high:.0f} of 255, under {c.dark_luma:.0f})",
                          _conf(c.dark_luma - f.luma_high, 0, 40), person)
        if f.luma_low > c.bright_luma:
            yield Finding(path, "bright", f"the face is washed out (even its darkest parts are "
                          f"{f.luma_low:.0f} of 255, over {c.bright_luma:.0f})",
                          _conf(f.luma_low - c.bright_luma, 0, 40), person)
        if f.yaw_deg is not None and abs(f.yaw_deg) > c.profile_yaw_deg:
            side = "left" if f.yaw_deg < 0 else "right"
            yield Finding(path, "profile", f"the head is turned about {abs(f.yaw_deg):.0f} degrees "
                          f"(to the image's {side}; over {c.profile_yaw_deg:.0f})",
                          _conf(abs(f.yaw_deg), c.profile_yaw_deg, 30), person)
        if f.outside > c.cut_fraction:
            yield Finding(path, "cut", f"{f.outside:.0%} of the face is outside the photo",
                          _conf(f.outside, c.cut_fraction, 0.3), person)
