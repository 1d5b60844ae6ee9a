// RecData
