from __future__ import annotations

import pytest

from cargobay.domain.errors import OciCode, RegistryError
from cargobay.registry.http import error_response


@pytest.mark.parametrize("code", list(OciCode), ids=lambda c: c.name)
def test_every_oci_code_renders_under_its_own_name(code: OciCode) -> None:
    response = error_response(RegistryError(code, "message"))
    assert f'"code": "{code.name}"'.encode() in response.body
    assert response.status_code == code.status


def test_codes_sharing_a_status_stay_distinct() -> None:
    assert OciCode.MANIFEST_INVALID is not OciCode.BLOB_UPLOAD_INVALID
    assert OciCode.MANIFEST_UNKNOWN.name == "MANIFEST_UNKNOWN"
    assert OciCode.MANIFEST_UNKNOWN.status == OciCode.BLOB_UNKNOWN.status == 404
