"""Pure, numpy-only face detection and alignment maths for the gateway.

The networks run on Triton; everything around them lives here as tested functions: box
utilities and NMS (:mod:`.boxes`), RetinaFace prior boxes and decoding (:mod:`.retinaface`),
the MTCNN cascade with the networks passed in as callables (:mod:`.mtcnn`) and similarity
alignment onto a landmark template (:mod:`.align`). Both detectors return
:class:`.types.Detection` in the pixel coordinates of the image they were given.
"""
