// Rules whose conditions go beyond a single string.
rule Test_Two_Of_Three
{
    strings:
        $one = "alpha"
        $two = "bravo"
        $three = "charlie"
    condition:
        2 of them
}

rule Test_Small_With_Header
{
    condition:
        filesize < 64 and uint32(0) == 0x21454C49
}
