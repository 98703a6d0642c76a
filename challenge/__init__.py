"""MIT/IEEE Sparse DNN Graph Challenge: official I/O, exact inference, problem generator.

The implementation lands with the Graph Challenge issue; ``graphnn challenge`` reports that
until then.
"""
