"""runtime/dit"""
