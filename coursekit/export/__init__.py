"""Exports of the kit's grading to the places courses grade in: Gradescope's autograder bundle (``gradescope``)."""
