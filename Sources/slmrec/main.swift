print("slmrec")
