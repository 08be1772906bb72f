"""Upstream adapters, one per cluster protocol, in one registry."""

from __future__ import annotations

from smg.registry import Registry
from smg.upstreams.base import UpstreamFactory

UPSTREAMS: Registry[UpstreamFactory] = Registry("upstream protocol")
UPSTREAMS.register_lazy("openai_http", "smg.upstreams.openai_http:OpenAIHttpUpstream")
UPSTREAMS.register_lazy("vllm_grpc", "smg.upstreams.grpc.adapter:VllmGrpcUpstream")
UPSTREAMS.register_lazy("sglang_grpc", "smg.upstreams.grpc.adapter:SglangGrpcUpstream")
UPSTREAMS.register_lazy("trtllm_grpc", "smg.upstreams.grpc.adapter:TrtllmGrpcUpstream")
UPSTREAMS.register_lazy("openai", "smg.upstreams.openai_cloud:OpenAICloudUpstream")
UPSTREAMS.register_lazy("openai_compatible", "smg.upstreams.openai_cloud:OpenAICloudUpstream")
UPSTREAMS.register_lazy("gemini", "smg.upstreams.gemini:GeminiUpstream")
UPSTREAMS.register_lazy("anthropic", "smg.upstreams.anthropic:AnthropicUpstream")
