// Text and hex string rules used by tests/engine/signatures/test_yara.py.
rule Test_Text_Marker
{
    strings:
        $a = "MAILWARDEN-YARA-TEST" ascii wide
    condition:
        $a
}

rule Test_Hex_Pattern
{
    strings:
        $h = { 4D 5A ?? 00 [2-4] DE AD BE EF }
    condition:
        $h at 0
}
