"""runtime/stream"""
