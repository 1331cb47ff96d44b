"""bench/results.png from bench/results.json: Sluice beside Kafka for every figure, medians with
min–max whiskers, one panel per kind of figure. Run by bench/run with bench/.venv's Python.

    chart.py RESULTS_JSON OUT_PNG
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = {"sluice": "#1f77b4", "kafka": "#7f7f7f"}
SHORT = {"page-cache": "pc", "fsync": "fsync"}

PANELS = [
    ("Produce throughput (MB/s)", False, [("ProducerPerf", "produce_mb_s"), ("librdkafka", "produce_rdkafka_mb_s"),
                                          ("wire", "produce_wire_mb_s")]),
    ("Consume throughput (MB/s)", False, [("cold", "consume_cold_mb_s"), ("warm", "consume_mb_s"),
                                          ("librdkafka", "consume_rdkafka_mb_s"), ("wire", "consume_wire_mb_s")]),
    ("End-to-end latency at a fixed rate (ms)", True, [("p50", "e2e_p50_ms"), ("p99", "e2e_p99_ms"),
                                                       ("p99.9", "e2e_p999_ms"), ("ack p99", "paced_ack_p99_ms")]),
    ("Latency: EndToEndLatency, ProducerPerf acks (ms)", True, [("e2e p50", "e2e_seq_p50_ms"), ("e2e p99", "e2e_seq_p99_ms"),
                                                                ("e2e p99.9", "e2e_seq_p999_ms"), ("prod p99", "produce_p99_ms")]),
    ("Resident memory (MiB)", True, [("idle", "rss_idle_mib"), ("peak", "rss_mib")]),
    ("Broker CPU seconds per GiB", False, [("produce", "cpu_s_per_gib_produce"), ("consume", "cpu_s_per_gib_consume")]),
    ("Start and groups (ms)", True, [("first ack", "start_to_first_ack_ms"), ("group up", "group_stabilise_ms"),
                                     ("rebalance", "group_rebalance_after_kill_ms")]),
]


def main(src, dst):
    with open(src) as f:
        r = json.load(f)
    figs = {(e["name"], e["durability"]): e for e in r["figures"]}
    modes = r["modes"]
    fig, axes = plt.subplots(2, 4, figsize=(22, 10))
    axes = axes.flatten()
    for ax, (title, log, items) in zip(axes, PANELS):
        labels, x = [], 0
        for label, name in items:
            for mode in modes:
                e = figs.get((name, mode))
                for j, kind in enumerate(("sluice", "kafka")):
                    v = e.get(kind) if e else None
                    if v:
                        ax.bar(x + (j - 0.5) * 0.4, v["median"], 0.4, color=COLOURS[kind],
                               yerr=[[v["median"] - v["min"]], [v["max"] - v["median"]]], capsize=3,
                               label=kind.capitalize() if not labels and mode == modes[0] and x == 0 else None)
                labels.append((x, f"{label}\n{SHORT.get(mode, mode)}"))
                x += 1
        ax.set_xticks([p for p, _ in labels])
        ax.set_xticklabels([t for _, t in labels], fontsize=7 if len(labels) > 6 else 8,
                           rotation=30 if len(labels) > 6 else 0)
        ax.set_title(title, fontsize=10)
        if log:
            ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)
    # ratios overview
    ax = axes[-1]
    names, ratios, colours = [], [], []
    for e in r["figures"]:
        if e.get("ratio"):
            names.append(f"{e['name']} ({SHORT.get(e['durability'], e['durability'])})")
            ratios.append(e["ratio"])
            good = e["ratio"] >= 1 if e["better"] == "higher" else e["ratio"] <= 1
            colours.append("#2ca02c" if good else "#d62728")
    ax.barh(range(len(ratios)), ratios, color=colours)
    ax.set_yticks(range(len(ratios)))
    ax.set_yticklabels(names, fontsize=6)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1, color="black", lw=0.8)
    ax.set_title("Sluice / Kafka (green: Sluice better)", fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right")
    what = "SMOKE RUN (tiny loads, meaningless)" if r.get("smoke") else f"median of {r['runs']} runs, whiskers min–max"
    note = f" — {r['note']}" if r.get("note") else ""
    fig.suptitle(f"Sluice vs Apache Kafka 4.3.1 on {r['machine'].get('cores')} cores: {what}{note}", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(dst, dpi=90)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
