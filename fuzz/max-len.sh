# Sourced by run-target.sh and cmin.sh: sets max_len, the largest input libFuzzer makes for
# target $t (bytes).
case $t in
    token_file) max_len=4096 ;;
    tiled_token_file) max_len=16384 ;;
    safetensors) max_len=400000 ;;
    config) max_len=32768 ;;
    *) max_len=65536 ;;
esac
