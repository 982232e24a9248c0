rule Test_Fine
{
    condition:
        false
}

rule Test_Broken
{
    strings:
        $a = "x"
    condition:
        $b
}
