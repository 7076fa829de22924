"""Faces: detection, alignment, embedding and verification around networks served by Triton.

Everything around the networks lives here as numpy functions with the networks passed in:
box utilities and NMS (:mod:`.boxes`), RetinaFace prior boxes and decoding (:mod:`.retinaface`),
the MTCNN cascade (:mod:`.mtcnn`) and similarity alignment onto a landmark template
(:mod:`.align`). :mod:`.service` chains them on Triton. Both detectors return
:class:`.types.Detection` in the pixel coordinates of the image they were given.
"""
