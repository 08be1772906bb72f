"""The simulated engine over gRPC: vLLM's and SGLang's services on one server.

``smg sim --grpc --port P`` serves ``vllm.grpc.engine.VllmEngine`` and
``sglang.grpc.scheduler.SglangScheduler`` (protos of ``smg-grpc-proto``) on the same
port, backed by the HTTP simulator's engine core (prefix cache, latency model, fault
injection, seeded determinism). See ``core.py`` for the token model and ``services.py``
for what each RPC answers (sim counters: SGLang ``GetServerInfo.scheduler_info``).
"""
