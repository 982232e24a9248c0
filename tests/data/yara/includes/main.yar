include "lib/common.yar"

rule Test_Uses_Include
{
    condition:
        Test_Common_Marker
}
