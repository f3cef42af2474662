"""s3api"""
