#!/usr/bin/env python3
"""Writes src/media/hold-music.wav, the default music on hold embedded in the
binary: a slow arpeggio (C E G E, D F A F), one second per note with soft
edges, 8 kHz 16-bit mono (what G.711 carries, so nothing is lost or resampled).

Generated rather than recorded so its licence is ours and it can be remade:
  python3 image/make-hold-music.py src/media/hold-music.wav
"""
import math, struct, sys, wave

RATE = 8000
NOTES = [523.25, 659.25, 783.99, 659.25, 587.33, 698.46, 880.00, 698.46]
AMPLITUDE = 0.35 * 32767

def note(freq, seconds=1.0, fade=0.08):
    n = int(RATE * seconds)
    out = []
    for i in range(n):
        t = i / RATE
        env = min(1.0, t / fade, (seconds - t) / fade)
        # a touch of the octave makes it less like a test tone
        v = math.sin(2 * math.pi * freq * t) + 0.15 * math.sin(4 * math.pi * freq * t)
        out.append(int(AMPLITUDE * env * v / 1.15))
    return out

samples = [s for f in NOTES for s in note(f)]
with wave.open(sys.argv[1], "wb") as w:
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(RATE)
    w.writeframes(struct.pack("<%dh" % len(samples), *samples))
