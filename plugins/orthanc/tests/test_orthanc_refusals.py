"""An upload Orthanc answers "FilteredOut" (HTTP 200: a Lua filter refused it) is a failure, never a stored
instance (#24: nothing is called done before it is verified). A real Orthanc with a ReceivedInstanceFilter."""

from __future__ import annotations

from pathlib import Path

import pytest

from diana_core import Dixel
from diana_core.errors import ValidationError
from diana_orthanc import Orthanc
from diana_orthanc.testdata import ct_bytes
from diana_orthanc.testing import orthanc_workdir, start_orthanc


def test_an_instance_the_server_filtered_out_is_not_stored():
    with orthanc_workdir("diana-orthanc-filter-") as workdir:
        lua = Path(workdir) / "filter.lua"
        lua.write_text('function ReceivedInstanceFilter(dicom, origin, info)\n'
                       '  return tonumber(dicom.InstanceNumber) ~= 2\nend\n')
        server = start_orthanc(workdir, "filtering", extra_config={"LuaScripts": [str(lua)]})
        try:
            orthanc = Orthanc(name="filtering", **{k: v for k, v in server.service_desc().items() if k != "ctype"})
            sent = [ct_bytes(i, run="filtered") for i in range(4)]  # instance numbers 1..4: the second is refused
            with pytest.raises(ValidationError, match="did not store instance .* 'FilteredOut'"):
                orthanc.put(Dixel(file=sent[1], level="instances"))
            result = orthanc.put_many([Dixel(file=data, level="instances") for data in sent])
            assert (result.done, len(result.failed)) == (3, 1)
            assert len(orthanc.inventory("instances")) == 3
        finally:
            server.stop()
