"""runtime/encoders"""
