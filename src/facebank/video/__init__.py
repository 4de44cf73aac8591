"""Who appears when in a video: frames (PyAV, streamed) -> faces -> tracks -> a name per track.

    from facebank import FaceBank
    from facebank.video import analyze_video
    result = analyze_video(FaceBank("gallery.db"), "clip.mp4", fps=2.0)
    for track in result.tracks:
        print(track.to_json())   # {"track", "name", "distance", "start", "end", "frames", "box"}
"""

from facebank.video.analyze import DEFAULT_FPS, TrackEvent, VideoResult, VideoWatcher, analyze_video
from facebank.video.decode import Frame, VideoError, VideoInfo, VideoReader, is_stream_url, is_video_path
from facebank.video.track import Track, Tracker, TrackerSettings

__all__ = [
    "DEFAULT_FPS", "Frame", "Track", "TrackEvent", "Tracker", "TrackerSettings", "VideoError", "VideoInfo",
    "VideoReader", "VideoResult", "VideoWatcher", "analyze_video", "is_stream_url", "is_video_path",
]
