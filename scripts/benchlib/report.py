"""What ``scripts/bench.py`` prints: one function per section, from that section's results."""

from __future__ import annotations

from typing import Any


def print_machine(info: dict[str, Any], cpu_gemm: float, device_gemm: float | None) -> None:
    print(
        f"machine: {info['cpu']} ({info.get('cpu_flags') or 'no SIMD flags read'}), "
        f"{info['cpu_count']} cores; JAX {info['jax']} on "
        f"{info['devices']} {info['platform']} device(s) ({info['device_kind']})"
    )
    for k, v in info["env"].items():
        print(
            f"note: {k}={v}" + ("  (affects numpy's GEMM peak)" if k == "OPENBLAS_CORETYPE" else "")
        )
    print(f"float32 GEMM peak (numpy 2048^3, best of 5): {cpu_gemm:.1f} GFLOP/s")
    if device_gemm:
        print(
            f"float32 GEMM on {info['device_kind']} (jnp 4096^3): {device_gemm:.1f} GFLOP/s "
            "(frac_peak uses this; default matmul precision)"
        )
    print()


def print_workload_header() -> None:
    print(
        f"{'workload':8} {'steps/s':>9} {'samples/s':>10} {'GFLOP':>8} {'frac_peak':>9} "
        f"{'ref st/s':>9} {'ref frac':>8} {'ours/ref':>8} {'compile':>8} {'ref comp':>8} "
        f"{'RSS MB':>7}"
    )


def print_workload(name: str, r: dict[str, Any]) -> None:
    print(
        f"{name:8} {r['steps_per_s']:9.2f} {r['samples_per_s']:10.0f} "
        f"{r['flop_per_step'] / 1e9:8.2f} {r['frac_peak']:9.3f} {r['ref_steps_per_s']:9.2f} "
        f"{r['ref_frac_peak']:8.3f} {r['ratio_vs_ref']:8.2f} {r['compile_s']:8.2f} "
        f"{r['ref_compile_s']:8.2f} {r['peak_rss_mb']:7.0f}",
        flush=True,
    )


def print_workload_footer() -> None:
    print("(best of alternating rounds; compile = the first two calls, the second may compile "
          "again; RSS = process-wide peak)")


def print_memory(mem: dict[str, Any]) -> None:
    print(f"{'config':20} {'temp MiB':>9} {'steps/s':>8} {'compile s':>9}")
    for k, v in mem.items():
        if isinstance(v, dict):
            print(f"{k:20} {v['temp_mib']:9.1f} {v['steps_per_s']:8.2f} {v['compile_s']:9.2f}")
    print(
        "T=100 remat / T=25 temp memory: "
        + ", ".join(
            f"{k.split('/')[0]}{'/bf16' if k.endswith('bf16') else ''} {v:.2f}"
            for k, v in mem.items()
            if "_vs_" in k
        )
    )


def print_devices(n: int, dev: dict[str, Any]) -> None:
    print(
        f"\n1 vs {n} virtual devices (steps/s, subprocess): "
        + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in dev.items())
    )


def print_fused(fe: dict[str, Any]) -> None:
    print(
        "\nwhole-epoch lax.scan vs per-step dispatch, digits MLP (steps/s): "
        f"reference {fe['ref_per_step_steps_per_s']:.0f} -> "
        f"{fe['ref_fused_steps_per_s']:.0f} ({fe['ref_fused_gain']:.2f}x)"
        + (
            f"; snntrain {fe['snntrain_per_step_steps_per_s']:.0f} -> "
            f"{fe['snntrain_fused_steps_per_s']:.0f} "
            f"({fe['snntrain_fused_gain']:.2f}x)"
            if "snntrain_fused_gain" in fe
            else ""
        )
    )


def print_conv_formulations(cf: dict[str, Any]) -> None:
    print(
        "\nCONV formulations (steps/s, frac of peak; alternating rounds): "
        + ", ".join(
            f"{k} {v['steps_per_s']:.2f} ({v['frac_peak']:.3f})"
            for k, v in cf.items()
            if "steps_per_s" in v
        )
    )
    print(
        "  max relative error of conv+pool vs lax.conv+reduce_window: "
        + ", ".join(f"{k} {v:.1e}" for k, v in cf["max_rel_error_vs_lax_conv"].items())
    )


def print_direct(d: dict[str, Any]) -> None:
    print(
        f"CONV encoder=direct (first conv once per example): "
        f"{d['direct_steps_per_s']:.2f} vs rate {d['rate_steps_per_s']:.2f} steps/s "
        f"({d['direct_vs_rate']:.2f}x; {d['direct_flop_per_step'] / 1e9:.2f} GFLOP/step"
        f", frac {d['direct_frac_peak']:.3f})"
    )


def print_malloc(m: dict[str, Any]) -> None:
    print("\nmalloc policies (one subprocess each, SNNTRAIN_MALLOC=...; steps/s):")
    for policy, rates in m["steps_per_s"].items():
        print(f"  {policy:10s} " + ", ".join(
            f"{k} {v:.2f}" if isinstance(v, float) else f"{k}: {v}" for k, v in rates.items()))
    for policy, gains in m["gain_vs_default"].items():
        print(f"  {policy} / default: " + ", ".join(f"{k} {v:.2f}x" for k, v in gains.items()))
    for name, c in m["auto_choice"].items():
        print(f"  auto chose {c['choice']} for {name} (median step "
              + ", ".join(f"{k} {v:.2f} ms" for k, v in c["ms"].items()) + ")")
