"""Anthropic Messages API: wire constants, errors, and translation to and from OpenAI chat.

``request_in`` (Messages request → OpenAI, the ``/v1/messages`` ingress), ``request_out``
(OpenAI → Messages, the ``anthropic`` cluster protocol), ``response`` (whole answers both
ways), ``stream_in`` / ``stream_out`` (event streams both ways), ``errors``, and
``codec`` (the dialect codec the listener uses). No aiohttp or grpc imports here.
"""
