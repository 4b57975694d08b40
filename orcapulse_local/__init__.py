"""The local stack: runs the product from ``template.yaml`` with no AWS account and no Docker."""
