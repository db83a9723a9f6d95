"""Methods for geometric (translation) shift: choosing the crop the source model sees."""
