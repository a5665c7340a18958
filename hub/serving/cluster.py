"""Joining the Ray cluster and deploying the engine on it (`engine.backend: ray`).

Address (`engine.ray.address`, overridden by `HUB_RAY_ADDRESS`):
- `auto`: join a Ray instance already running on this machine (`ray start --head`), else start a local
  one for this process;
- `ray://HOST:10001`: join a remote cluster through Ray Client;
- `HOST:6379`: join as a driver on a cluster node (the head's GCS address).
A malformed or unreachable address stops the start with a message naming it (the port is probed
before Ray is asked, so a wrong address fails in seconds instead of Ray's long retries).

Deployment: one Serve application per distinct engine config, named `sakuga-engine-<hash>` (the
hash covers the config the replicas use and the data folder, not the database). Every app replica
(front end) with the same config finds the running application and takes a handle to it; only the
first one deploys. Replicas: `num_gpus_per_replica` GPUs and `num_cpus_per_replica` CPUs each;
`min_replicas == max_replicas` gives a fixed count, otherwise Serve autoscales on the number of
requests queued or running per replica (target `TARGET_ONGOING_REQUESTS`).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from core.errors import first_line
from core.keys import sha256_hex
from hub.config import ConfigError, HubConfig, RaySettings

log = logging.getLogger(__name__)

ADDRESS_ENV = "HUB_RAY_ADDRESS"
RUNTIME_ENV_ENV = "HUB_RAY_RUNTIME_ENV"  # JSON runtime_env for ray.init (e.g. a working_dir for Ray Client)
APP_PREFIX = "sakuga-engine"
DEPLOYMENT_NAME = "engine"
# Requests a replica accepts at once. High on purpose: a request waiting inside the replica sits in the
# engine's queue, where it can be batched with others and where interactive work overtakes eval work;
# a request held back by Serve's router can be neither.
MAX_ONGOING_REQUESTS = 64
# Autoscaling: add a replica when more than this many requests are queued or running per replica
# (half of a full batch of 8: beyond it a person waits more than one extra pipeline call).
TARGET_ONGOING_REQUESTS = 4
UPSCALE_DELAY_S = 10.0
DOWNSCALE_DELAY_S = 300.0  # loading an SDXL checkpoint costs tens of seconds: keep replicas a while
PROBE_TIMEOUT_S = 5.0
CONNECT_HINT = "start it with `ray start --head`, or fix engine.ray.address / HUB_RAY_ADDRESS"


class RayClusterError(ConfigError):
    """The Ray cluster cannot be used as configured; the message names the address or the key."""


def ray_address(settings: RaySettings) -> str:
    return (os.environ.get(ADDRESS_ENV) or settings.address or "auto").strip()


def parse_address(address: str) -> tuple[str, str | None, int | None]:
    """(`auto` | `client` | `gcs`, host, port); a malformed address raises RayClusterError naming it."""
    if address == "auto":
        return "auto", None, None
    kind, rest = ("client", address[len("ray://"):]) if address.startswith("ray://") else ("gcs", address)
    host, sep, port = rest.rpartition(":")
    if not sep or not host or "/" in rest or not port.isdigit() or not 0 < int(port) < 65536:
        raise RayClusterError(
            f"engine.ray.address {address!r} is not a Ray address: use 'auto', 'ray://HOST:PORT' (Ray Client, "
            "usually port 10001) or 'HOST:PORT' (the head node's GCS, usually port 6379)"
        )
    return kind, host.strip("[]"), int(port)


def probe(address: str, host: str, port: int, timeout: float = PROBE_TIMEOUT_S) -> None:
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise RayClusterError(f"the Ray cluster at {address!r} is unreachable ({reason}); {CONNECT_HINT}") from None


def join_ray(address: str) -> bool:
    """Connect this process to Ray at `address`; True when this call connected it (and it should
    disconnect at the end), False when Ray was already initialised here (tests, notebooks)."""
    import ray

    kind, host, port = parse_address(address)
    if kind != "auto":  # checked even when Ray is up here: a wrong address is a wrong config
        assert host is not None and port is not None
        probe(address, host, port)
    if ray.is_initialized():
        return False
    runtime_env = json.loads(os.environ[RUNTIME_ENV_ENV]) if os.environ.get(RUNTIME_ENV_ENV) else None
    try:
        ray.init(
            address=None if kind == "auto" else address,
            include_dashboard=False,
            logging_level=logging.WARNING,
            runtime_env=runtime_env,
        )
    except Exception as err:  # noqa: BLE001 - ConnectionError, timeouts, version mismatch, auth
        detail = first_line(err, 300)
        raise RayClusterError(f"cannot join the Ray cluster at {address!r}: {detail}; {CONNECT_HINT}") from None
    return True


def app_name(config: HubConfig, settings: RaySettings) -> str:
    """The Serve application for this engine config: equal configs share one application."""
    data = config.model_dump(mode="json", exclude={"source_path", "database_url"})
    return f"{APP_PREFIX}-{sha256_hex({'config': data, 'data': str(config.data_path), 'ray': settings.model_dump(mode='json')})[:10]}"


def replica_options(config: HubConfig, settings: RaySettings) -> dict[str, Any]:
    """What each replica is told: where the data is, its device, threads and multiplexing LRU size."""
    threads = max(1, int(settings.num_cpus_per_replica))
    return {
        "data_dir": str(config.data_path),
        "device": "cpu" if settings.num_gpus_per_replica == 0 else None,  # None: the config's (auto -> cuda)
        "torch_threads": threads,
        "checkpoints_per_replica": settings.checkpoints_per_replica,
        "task_threads": max(4, settings.eval_workers * 2),
    }


def deployment_options(settings: RaySettings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "name": DEPLOYMENT_NAME,
        "ray_actor_options": {"num_cpus": settings.num_cpus_per_replica, "num_gpus": settings.num_gpus_per_replica},
        "max_ongoing_requests": MAX_ONGOING_REQUESTS,
        "health_check_period_s": 5.0,
        "graceful_shutdown_timeout_s": 30.0,
    }
    if settings.min_replicas == settings.max_replicas:
        options["num_replicas"] = settings.max_replicas
    else:
        options["autoscaling_config"] = {
            "min_replicas": settings.min_replicas,
            "initial_replicas": max(1, settings.min_replicas),
            "max_replicas": settings.max_replicas,
            "target_ongoing_requests": TARGET_ONGOING_REQUESTS,
            "upscale_delay_s": UPSCALE_DELAY_S,
            "downscale_delay_s": DOWNSCALE_DELAY_S,
        }
    return options


def check_resources(address: str, settings: RaySettings) -> tuple[float, RaySettings]:
    """The cluster's GPUs, and the settings with `num_gpus_per_replica: auto` resolved (one GPU per
    replica where the cluster has any, else 0: serve on CPUs). An explicit GPU deployment on a cluster
    without any stops the start."""
    import ray

    gpus = float(ray.cluster_resources().get("GPU", 0))
    if settings.num_gpus_per_replica == "auto":
        return gpus, settings.model_copy(update={"num_gpus_per_replica": 1.0 if gpus > 0 else 0.0})
    if settings.num_gpus_per_replica > 0 and gpus == 0:
        raise RayClusterError(
            f"engine.ray.num_gpus_per_replica is {settings.num_gpus_per_replica:g} but the Ray cluster at {address!r} "
            "has no GPU; set it to 0 (or auto) to serve on CPUs, or add GPU nodes"
        )
    return gpus, settings


@dataclass
class ServingCluster:
    """This process's connection to the engine deployment."""

    address: str
    app_name: str
    handle: Any  # ray.serve.handle.DeploymentHandle
    settings: RaySettings
    gpus: float
    owns_ray: bool

    @property
    def device(self) -> str:
        """The replicas' device as the front end's checks see it."""
        return "cuda" if self.settings.num_gpus_per_replica > 0 else "cpu"

    @classmethod
    def connect(cls, config: HubConfig, settings: RaySettings | None = None, *, deploy_timeout_s: float = 600.0) -> "ServingCluster":
        from ray import serve

        settings = settings or config.engine.ray
        address = ray_address(settings)
        owns_ray = join_ray(address)
        try:
            gpus, settings = check_resources(address, settings)
            name = app_name(config, settings)
            handle = _running_app_handle(name, deploy_timeout_s)
            if handle is None:
                from hub.serving.replica import EngineReplica

                serve.start(proxy_location="Disabled")
                deployment = serve.deployment(EngineReplica).options(**deployment_options(settings))
                replica_config = config.model_dump(mode="json", exclude={"source_path"})
                app = deployment.bind(replica_config, replica_options(config, settings))
                log.info("deploying %s on the Ray cluster at %s", name, address)
                handle = serve.run(app, name=name, route_prefix=None,
                                   logging_config={"log_level": "WARNING", "enable_access_log": False})
        except BaseException:
            if owns_ray:
                import ray

                ray.shutdown()
            raise
        return cls(address=address, app_name=name, handle=handle, settings=settings, gpus=gpus, owns_ray=owns_ray)

    def replica_actors(self) -> list[Any]:
        """The replicas' actor handles (for tools and tests: their pids, killing one)."""
        import ray

        prefix = f"SERVE_REPLICA::{self.app_name}#{DEPLOYMENT_NAME}#"
        actors = []
        for item in ray.util.list_named_actors(all_namespaces=True):
            if item["name"].startswith(prefix):
                try:
                    actors.append(ray.get_actor(item["name"], namespace=item["namespace"]))
                except ValueError:  # gone since it was listed
                    continue
        return actors

    def replica_pids(self, timeout_s: float = 30.0) -> list[int]:
        import ray

        refs = [actor.__ray_call__.remote(lambda _self: os.getpid()) for actor in self.replica_actors()]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
        pids = []
        for ref in ready:
            try:
                pids.append(int(ray.get(ref)))
            except Exception:  # noqa: BLE001 - a replica dying right now
                continue
        return sorted(pids)

    def delete(self) -> None:
        """Remove this engine application from the cluster (tools and tests; front ends leave it)."""
        from ray import serve

        serve.delete(self.app_name)

    def disconnect(self) -> None:
        if self.owns_ray:
            import ray

            ray.shutdown()
            self.owns_ray = False


def _running_app_handle(name: str, timeout_s: float) -> Any:
    """A handle to the application if it is deployed (waiting while it deploys), else None."""
    from ray import serve

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            status = serve.status().applications.get(name)
        except Exception:  # noqa: BLE001 - Serve not started on this cluster yet
            return None
        state = str(getattr(status, "status", "")).rsplit(".", 1)[-1].upper() if status is not None else ""
        if state == "RUNNING":
            return serve.get_app_handle(name)
        if state != "DEPLOYING" or time.monotonic() > deadline:
            return None  # absent, failed or unhealthy: (re)deploy
        time.sleep(1.0)
