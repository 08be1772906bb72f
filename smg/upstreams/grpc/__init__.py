"""gRPC mode: the engines' own gRPC protocols (``smg-grpc-proto``) over grpc.aio.

``types`` (neutral chunk and info types), ``sampling`` (OpenAI/SGLang fields → each
engine's SamplingParams), ``errors`` (gRPC status → typed gateway errors), ``channel``
(one channel per endpoint), ``client`` plus ``vllm`` / ``sglang`` / ``trtllm`` (typed
clients), ``state`` (the contract with upstream filters), ``adapter`` (the ``Upstream``
per protocol) and ``generate_api`` (SGLang-style ``/generate`` rendering).
"""
