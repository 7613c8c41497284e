"""Scale-out: the same queue served by ``transcriber worker`` processes on other machines, through RQ on Redis.

``coordinator`` is the app's side (dispatch within the workers' capacity, ingest of the
Stream), ``worker`` the processing machines' side, ``protocol`` what they say to each
other, ``media`` how workers get the audio (a shared folder, or presigned S3 URLs).
"""
