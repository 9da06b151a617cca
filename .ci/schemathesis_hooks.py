"""Schemathesis hooks for .ci/openapi-check: SDP offers (application/sdp) are text."""

import schemathesis

schemathesis.serializer.alias("application/sdp", "text/plain")
