"""Dev and test harness: gen_protos (`make protos`), make_tiny_model, otlp_sink (a test OTLP
collector), chromium (headless browser for console tests), gpu_check, worker_big_prompt,
filter_loop_stall. Not shipped to operators."""
