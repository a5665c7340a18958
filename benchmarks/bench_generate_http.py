"""/generate over HTTP (gradio_client) vs a direct pipeline call with the same settings, on demo-random.

Goal: HTTP / direct <= 1.15. Prints both medians and the ratio.
"""

from __future__ import annotations

import argparse

import torch

from _hub import Goals, hub_app, median_seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    from gradio_client import Client

    with hub_app() as (url, ctx):
        spec = ctx.config.checkpoint("demo-random")
        d = spec.defaults
        # ssl_verify=False: gradio_client otherwise builds a TLS context per request even for
        # http:// URLs (~100 ms of client CPU that has nothing to do with the server).
        client = Client(url, verbose=False, ssl_verify=False)
        pipe = ctx.engine.pipeline("demo-random")
        from hub.engine import make_scheduler

        def direct() -> None:
            with ctx.engine._gpu_lock:
                pipe.scheduler = make_scheduler(d.sampler, pipe.scheduler)
                with torch.inference_mode():
                    pipe(
                        prompt=["1girl, aqua hair"], negative_prompt=[""], width=d.width, height=d.height,
                        num_inference_steps=d.steps, guidance_scale=d.cfg,
                        generator=[torch.Generator("cpu").manual_seed(1)],
                    ).images[0].save("/dev/null", format="PNG")

        def over_http() -> None:
            client.predict("1girl, aqua hair", "", "demo-random", "", d.width, d.height, d.steps, d.cfg, d.sampler, 1, 1, api_name="/generate")

        direct(); over_http()  # warm up both paths
        # Interleave so machine noise hits both alike.
        t_direct, t_http = [], []
        for _ in range(args.repeats):
            t_direct.append(median_seconds(direct, 1))
            t_http.append(median_seconds(over_http, 1))
        import statistics

        a, b = statistics.median(t_direct), statistics.median(t_http)
        print(f"device={ctx.engine.device} size={d.width}x{d.height} steps={d.steps}")
        print(f"direct pipeline call: {a * 1000:.1f} ms (median of {args.repeats})")
        print(f"/generate over HTTP:  {b * 1000:.1f} ms")
        goals = Goals()
        goals.check("/generate over HTTP vs a direct call", b / a, 1.15, at_least=False, unit="x")
    goals.exit()


if __name__ == "__main__":
    main()
