"""Findings about the faces a photo holds: ``unreadable``, ``no_face`` and ``multi_face``."""

from __future__ import annotations

from collections.abc import Iterator

from facebank.audit.base import AuditFolder, Finding, register


@register("faces")
class FacesCheck:
    name = "faces"
    kinds: tuple[str, ...] = ("unreadable", "no_face", "multi_face")

    def run(self, folder: AuditFolder) -> Iterator[Finding]:
        c = folder.config
        for i, p in enumerate(folder.photos):
            if p.error is not None:
                yield Finding(p.path, "unreadable", p.error, 1.0, p.person)
                continue
            real = [f for f in p.faces if not f.fallback]
            if not real:
                if i in folder.rejected_fallback:
                    d = folder.rejected_fallback[i]
                    detail = ("no face found; taken as a face crop the whole photo does not look like "
                              f"{p.person} either (distance {d:.2f} to the nearest photo of {p.person})")
                    yield Finding(p.path, "no_face", detail, 0.8, p.person)
                elif not p.faces:
                    yield Finding(p.path, "no_face", "no face found", 0.9, p.person)
                continue
            big = max(f.side for f in real)
            counted = [f for f in real if f.side >= c.multi_face_ratio * big]
            if len(counted) > 1:
                main = folder.main_face(i)
                where = ", ".join(f"[{', '.join(str(v) for v in f.box.as_list())}]"
                                  + (" (the one most like the person)" if f is main else "")
                                  for f in counted)
                conf = min(1.0, 0.5 + 0.5 * sorted(f.side for f in counted)[-2] / big)
                yield Finding(p.path, "multi_face", f"{len(counted)} faces of similar size: {where}",
                              round(conf, 3), p.person)
