"""A person's timeline (issue 21): photo dates from EXIF, else the file's time, else none; filled
after a scan (older photos back-filled); the timeline is oldest first with undated photos last."""

from __future__ import annotations

import datetime as dt
import hashlib
import os

import numpy as np
from PIL import Image

from facebank.gallery import open_gallery
from facebank.gallery.base import FaceRecord, PhotoRecord
from facebank.photo_dates import fill_photo_dates, photo_date
from tests.test_cluster import MODEL, blobs


def _jpeg(path, datetime_original=None, datetime=None):
    exif = Image.Exif()
    if datetime is not None:
        exif[0x0132] = datetime
    if datetime_original is not None:
        exif.get_ifd(0x8769)[0x9003] = datetime_original
    Image.new("RGB", (32, 24), (90, 120, 150)).save(path, exif=exif)
    return path


def test_a_photo_is_dated_by_exif_then_by_its_file_time_then_not_at_all(tmp_path):
    a = _jpeg(tmp_path / "a.jpg", datetime_original="2014:07:03 10:11:12", datetime="2020:01:01 00:00:00")
    b = _jpeg(tmp_path / "b.jpg", datetime="2011:02:03 04:05:06")
    c = _jpeg(tmp_path / "c.jpg")
    stamp = dt.datetime(2009, 5, 6, 7, 8, 9).timestamp()
    os.utime(c, (stamp, stamp))
    bad = _jpeg(tmp_path / "bad.jpg", datetime="not a date at all")
    os.utime(bad, (stamp, stamp))
    assert photo_date(a) == ("2014-07-03T10:11:12", "exif")
    assert photo_date(b) == ("2011-02-03T04:05:06", "exif")
    assert photo_date(c) == ("2009-05-06T07:08:09", "file")
    assert photo_date(bad) == ("2009-05-06T07:08:09", "file")
    assert photo_date(tmp_path / "gone.jpg") == (None, "none")
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    assert photo_date(tmp_path / "junk.jpg")[1] == "file"


def test_the_timeline_is_oldest_first_and_old_photos_are_back_filled(tmp_path):
    x, _ = blobs([4], seed=4)
    paths = [_jpeg(tmp_path / "p1.jpg", datetime="2016:01:01 00:00:00"),
             _jpeg(tmp_path / "p2.jpg", datetime="2012:06:01 00:00:00"),
             tmp_path / "gone.jpg",
             _jpeg(tmp_path / "p3.jpg", datetime="2016:03:01 00:00:00")]
    g = open_gallery(tmp_path / "g.db")
    items = []
    for p, v in zip(paths, x, strict=True):
        sha = hashlib.sha256(str(p).encode()).hexdigest()
        items.append((PhotoRecord("Ann", str(p), sha, 10, 32, 24, "ok"),
                      [FaceRecord((0.0, 0.0, 8.0, 8.0), np.asarray(v), "test", 1.0)]))
    g.add_photos(items, MODEL)
    assert [t["taken_at"] for t in g.timeline("Ann")] == [None] * 4
    assert fill_photo_dates(g) == 4
    assert fill_photo_dates(g) == 0  # each photo once
    got = [(t["taken_at"], t["source"]) for t in g.timeline("Ann")]
    assert got == [("2012-06-01T00:00:00", "exif"), ("2016-01-01T00:00:00", "exif"),
                   ("2016-03-01T00:00:00", "exif"), (None, "none")]
    g.close()
