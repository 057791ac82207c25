"""Generated gRPC/protobuf code (`make protos`). Never edit by hand."""
