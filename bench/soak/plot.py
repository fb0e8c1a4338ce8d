"""Draws the soak's per-minute samples (samples.json) as soak.png with matplotlib, the outage shaded.

usage: python3 bench/soak/plot.py DIR
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

out = sys.argv[1]
samples = json.load(open(f"{out}/samples.json"))
summary = json.load(open(f"{out}/summary.json"))
minutes = [s["minute"] for s in samples]
outage_start, outage_end = summary["outage"]

panels = [
    ("RSS (MB): mean, peak", [s["rssMb"] for s in samples], [s["rssPeakMb"] for s in samples]),
    ("descriptors: BPF, perf, sockets;\nfiles (dashed)", [s["otherFds"] for s in samples], [s["fileFds"] for s in samples]),
    ("fullest BPF map (fill ratio)", [s["maxMapFill"] for s in samples], None),
    ("OTLP queue (MB)", [s["otlp"]["queuedMb"] for s in samples], None),
    ("OTLP items delivered (cumulative)", [s["otlp"]["exported"] for s in samples], None),
    ("collector CPU (% of one CPU)", [100 * s["cpuShare"] for s in samples], None),
]
figure, axes = plt.subplots(len(panels), 1, figsize=(9, 2.2 * len(panels)), sharex=True)
for axis, (title, values, peaks) in zip(axes, panels):
    axis.plot(minutes, values, marker=".", linewidth=1)
    if peaks:
        axis.plot(minutes, peaks, marker=".", linewidth=1, linestyle="--", color="tab:gray")
    axis.axvspan(outage_start, outage_end, color="tab:red", alpha=0.15, label="OTLP endpoint down")
    axis.set_ylabel(title, fontsize=8)
    axis.set_ylim(bottom=0)
    axis.grid(alpha=0.3)
axes[0].legend(loc="lower right", fontsize=8)
axes[-1].set_xlabel("minute")
figure.suptitle(
    f"ebpf-collector soak: default pipeline + OTLP, {summary['execRate']} execs/s, CPU-bound workload, {summary['minutes']} min"
)
figure.tight_layout()
figure.savefig(f"{out}/soak.png", dpi=110)
print(f"{out}/soak.png")
