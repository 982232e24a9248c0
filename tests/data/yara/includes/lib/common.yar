rule Test_Common_Marker
{
    strings:
        $a = "common-marker"
    condition:
        $a
}
